-- Entries per linked actor, location and source per UTC day, kept by statement-level triggers on
-- the link tables (which carry their entry's published_at), so that count=true under one actor,
-- source or location and a time window adds up at most a few thousand day rows plus the links of
-- the window's two partial days, instead of counting every matching link.

CREATE TABLE link_day_counts (
    link         "char" NOT NULL,            -- 'a' actor, 'l' location, 's' source
    target_id    bigint NOT NULL,
    day          date NOT NULL,              -- (published_at AT TIME ZONE 'UTC')::date
    entry_count  bigint NOT NULL,
    PRIMARY KEY (link, target_id, day)
);

-- One function for the three link tables: TG_ARGV[0] is the link letter, TG_ARGV[1] the column of
-- the linked id. Deltas are applied in key order so that concurrent writers lock rows in one order.
CREATE FUNCTION sitrep_link_day_counts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    delta text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        delta := format('SELECT %I AS target_id, published_at, 1 AS n FROM new_links', TG_ARGV[1]);
    ELSIF TG_OP = 'DELETE' THEN
        delta := format('SELECT %I AS target_id, published_at, -1 AS n FROM old_links', TG_ARGV[1]);
    ELSE
        delta := format('SELECT %1$I AS target_id, published_at, 1 AS n FROM new_links'
                        ' UNION ALL SELECT %1$I, published_at, -1 FROM old_links', TG_ARGV[1]);
    END IF;
    EXECUTE format(
        'INSERT INTO link_day_counts AS c (link, target_id, day, entry_count)'
        ' SELECT %L, target_id, (published_at AT TIME ZONE ''UTC'')::date, sum(n) FROM (%s) d'
        ' GROUP BY 2, 3 HAVING sum(n) <> 0 ORDER BY 2, 3'
        ' ON CONFLICT (link, target_id, day) DO UPDATE SET entry_count = c.entry_count + excluded.entry_count',
        TG_ARGV[0], delta);
    RETURN NULL;
END $$;

CREATE TRIGGER entry_actors_day_insert AFTER INSERT ON entry_actors REFERENCING NEW TABLE AS new_links
    FOR EACH STATEMENT EXECUTE FUNCTION sitrep_link_day_counts('a', 'actor_id');
CREATE TRIGGER entry_actors_day_delete AFTER DELETE ON entry_actors REFERENCING OLD TABLE AS old_links
    FOR EACH STATEMENT EXECUTE FUNCTION sitrep_link_day_counts('a', 'actor_id');
CREATE TRIGGER entry_actors_day_update AFTER UPDATE ON entry_actors REFERENCING OLD TABLE AS old_links NEW TABLE AS new_links
    FOR EACH STATEMENT EXECUTE FUNCTION sitrep_link_day_counts('a', 'actor_id');
CREATE TRIGGER entry_locations_day_insert AFTER INSERT ON entry_locations REFERENCING NEW TABLE AS new_links
    FOR EACH STATEMENT EXECUTE FUNCTION sitrep_link_day_counts('l', 'location_id');
CREATE TRIGGER entry_locations_day_delete AFTER DELETE ON entry_locations REFERENCING OLD TABLE AS old_links
    FOR EACH STATEMENT EXECUTE FUNCTION sitrep_link_day_counts('l', 'location_id');
CREATE TRIGGER entry_locations_day_update AFTER UPDATE ON entry_locations REFERENCING OLD TABLE AS old_links NEW TABLE AS new_links
    FOR EACH STATEMENT EXECUTE FUNCTION sitrep_link_day_counts('l', 'location_id');
CREATE TRIGGER entry_sources_day_insert AFTER INSERT ON entry_sources REFERENCING NEW TABLE AS new_links
    FOR EACH STATEMENT EXECUTE FUNCTION sitrep_link_day_counts('s', 'source_id');
CREATE TRIGGER entry_sources_day_delete AFTER DELETE ON entry_sources REFERENCING OLD TABLE AS old_links
    FOR EACH STATEMENT EXECUTE FUNCTION sitrep_link_day_counts('s', 'source_id');
CREATE TRIGGER entry_sources_day_update AFTER UPDATE ON entry_sources REFERENCING OLD TABLE AS old_links NEW TABLE AS new_links
    FOR EACH STATEMENT EXECUTE FUNCTION sitrep_link_day_counts('s', 'source_id');

INSERT INTO link_day_counts (link, target_id, day, entry_count)
SELECT 'a', actor_id, (published_at AT TIME ZONE 'UTC')::date, count(*) FROM entry_actors GROUP BY 2, 3
UNION ALL
SELECT 'l', location_id, (published_at AT TIME ZONE 'UTC')::date, count(*) FROM entry_locations GROUP BY 2, 3
UNION ALL
SELECT 's', source_id, (published_at AT TIME ZONE 'UTC')::date, count(*) FROM entry_sources GROUP BY 2, 3;
