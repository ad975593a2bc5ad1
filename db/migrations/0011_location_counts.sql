-- How many entries link each location directly, kept like actor_entry_counts (0010), so that
-- locations can be listed by -entry_count without counting links.

CREATE TABLE location_entry_counts (
    location_id  bigint PRIMARY KEY REFERENCES locations (id) ON DELETE CASCADE,
    entry_count  bigint NOT NULL DEFAULT 0
);
CREATE INDEX location_entry_counts_count_idx ON location_entry_counts (entry_count DESC, location_id DESC);

CREATE FUNCTION sitrep_location_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO location_entry_counts AS c (location_id, entry_count)
        SELECT location_id, count(*) FROM new_links GROUP BY location_id ORDER BY location_id
        ON CONFLICT (location_id) DO UPDATE SET entry_count = c.entry_count + excluded.entry_count;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE location_entry_counts c SET entry_count = c.entry_count - d.n
          FROM (SELECT location_id, count(*) AS n FROM old_links GROUP BY location_id ORDER BY location_id) d
         WHERE c.location_id = d.location_id;
    ELSE
        INSERT INTO location_entry_counts AS c (location_id, entry_count)
        SELECT location_id, sum(n) FROM (
            SELECT location_id, 1 AS n FROM new_links
            UNION ALL
            SELECT location_id, -1 FROM old_links
        ) d GROUP BY location_id HAVING sum(n) <> 0 ORDER BY location_id
        ON CONFLICT (location_id) DO UPDATE SET entry_count = c.entry_count + excluded.entry_count;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER entry_locations_count_insert AFTER INSERT ON entry_locations
    REFERENCING NEW TABLE AS new_links FOR EACH STATEMENT EXECUTE FUNCTION sitrep_location_counts();
CREATE TRIGGER entry_locations_count_delete AFTER DELETE ON entry_locations
    REFERENCING OLD TABLE AS old_links FOR EACH STATEMENT EXECUTE FUNCTION sitrep_location_counts();
CREATE TRIGGER entry_locations_count_update AFTER UPDATE ON entry_locations
    REFERENCING OLD TABLE AS old_links NEW TABLE AS new_links FOR EACH STATEMENT EXECUTE FUNCTION sitrep_location_counts();

INSERT INTO location_entry_counts (location_id, entry_count)
SELECT location_id, count(*) FROM entry_locations GROUP BY location_id;
