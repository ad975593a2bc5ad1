-- Entry counts kept per blog and per UTC hour by statement-level triggers, so a blog's
-- entry_count and an unfiltered timeline are reads of a few rows, not a count over millions.

CREATE TABLE blog_entry_counts (
    blog_id      bigint PRIMARY KEY REFERENCES blogs (id) ON DELETE CASCADE,
    entry_count  bigint NOT NULL DEFAULT 0
);

CREATE TABLE entry_hour_counts (
    hour         timestamptz PRIMARY KEY,  -- date_trunc('hour', published_at, 'UTC')
    entry_count  bigint NOT NULL DEFAULT 0
);

CREATE FUNCTION sitrep_entry_rollups() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- one delta per blog and per hour from the statement's rows, applied in key order so that
    -- concurrent writers lock the count rows in the same order
    IF TG_OP = 'INSERT' THEN
    WITH delta AS (SELECT blog_id, date_trunc('hour', published_at, 'UTC') AS hour, 1 AS n FROM new_entries),
    b AS (
        INSERT INTO blog_entry_counts AS c (blog_id, entry_count)
        SELECT d.blog_id, sum(d.n) FROM delta d
         WHERE EXISTS (SELECT 1 FROM blogs x WHERE x.id = d.blog_id)
         GROUP BY d.blog_id HAVING sum(d.n) <> 0 ORDER BY d.blog_id
        ON CONFLICT (blog_id) DO UPDATE SET entry_count = c.entry_count + excluded.entry_count
    )
    INSERT INTO entry_hour_counts AS c (hour, entry_count)
    SELECT hour, sum(n) FROM delta GROUP BY hour HAVING sum(n) <> 0 ORDER BY hour
    ON CONFLICT (hour) DO UPDATE SET entry_count = c.entry_count + excluded.entry_count;
    ELSIF TG_OP = 'DELETE' THEN
    WITH delta AS (SELECT blog_id, date_trunc('hour', published_at, 'UTC') AS hour, -1 AS n FROM old_entries),
    b AS (
        INSERT INTO blog_entry_counts AS c (blog_id, entry_count)
        SELECT d.blog_id, sum(d.n) FROM delta d
         WHERE EXISTS (SELECT 1 FROM blogs x WHERE x.id = d.blog_id)
         GROUP BY d.blog_id HAVING sum(d.n) <> 0 ORDER BY d.blog_id
        ON CONFLICT (blog_id) DO UPDATE SET entry_count = c.entry_count + excluded.entry_count
    )
    INSERT INTO entry_hour_counts AS c (hour, entry_count)
    SELECT hour, sum(n) FROM delta GROUP BY hour HAVING sum(n) <> 0 ORDER BY hour
    ON CONFLICT (hour) DO UPDATE SET entry_count = c.entry_count + excluded.entry_count;
    ELSE
    WITH delta AS (SELECT blog_id, date_trunc('hour', published_at, 'UTC') AS hour, 1 AS n FROM new_entries
        UNION ALL SELECT blog_id, date_trunc('hour', published_at, 'UTC') AS hour, -1 AS n FROM old_entries),
    b AS (
        INSERT INTO blog_entry_counts AS c (blog_id, entry_count)
        SELECT d.blog_id, sum(d.n) FROM delta d
         WHERE EXISTS (SELECT 1 FROM blogs x WHERE x.id = d.blog_id)
         GROUP BY d.blog_id HAVING sum(d.n) <> 0 ORDER BY d.blog_id
        ON CONFLICT (blog_id) DO UPDATE SET entry_count = c.entry_count + excluded.entry_count
    )
    INSERT INTO entry_hour_counts AS c (hour, entry_count)
    SELECT hour, sum(n) FROM delta GROUP BY hour HAVING sum(n) <> 0 ORDER BY hour
    ON CONFLICT (hour) DO UPDATE SET entry_count = c.entry_count + excluded.entry_count;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER entries_rollup_insert AFTER INSERT ON entries
    REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION sitrep_entry_rollups();
CREATE TRIGGER entries_rollup_delete AFTER DELETE ON entries
    REFERENCING OLD TABLE AS old_entries FOR EACH STATEMENT EXECUTE FUNCTION sitrep_entry_rollups();
CREATE TRIGGER entries_rollup_update AFTER UPDATE ON entries
    REFERENCING OLD TABLE AS old_entries NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION sitrep_entry_rollups();

INSERT INTO blog_entry_counts (blog_id, entry_count) SELECT blog_id, count(*) FROM entries GROUP BY blog_id;
INSERT INTO entry_hour_counts (hour, entry_count)
SELECT date_trunc('hour', published_at, 'UTC'), count(*) FROM entries GROUP BY 1;
