-- How many entries link each actor and each source, kept by statement-level triggers on the
-- link tables, so "actors by -entry_count" and the entry_count of a page of actors cost an
-- index read, not a count over millions of links. Separate tables (not columns) so that a
-- new link does not touch the actor's row, its updated_at or the change feed.

CREATE TABLE actor_entry_counts (
    actor_id     bigint PRIMARY KEY REFERENCES actors (id) ON DELETE CASCADE,
    entry_count  bigint NOT NULL DEFAULT 0
);
CREATE INDEX actor_entry_counts_count_idx ON actor_entry_counts (entry_count DESC, actor_id DESC);

CREATE TABLE source_entry_counts (
    source_id    bigint PRIMARY KEY REFERENCES sources (id) ON DELETE CASCADE,
    entry_count  bigint NOT NULL DEFAULT 0
);
CREATE INDEX source_entry_counts_count_idx ON source_entry_counts (entry_count DESC, source_id DESC);

-- One function per link table: a delta per id from the statement's transition tables, applied
-- in id order so that concurrent writers take the row locks in the same order.
CREATE FUNCTION sitrep_actor_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO actor_entry_counts AS c (actor_id, entry_count)
        SELECT actor_id, count(*) FROM new_links GROUP BY actor_id ORDER BY actor_id
        ON CONFLICT (actor_id) DO UPDATE SET entry_count = c.entry_count + excluded.entry_count;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE actor_entry_counts c SET entry_count = c.entry_count - d.n
          FROM (SELECT actor_id, count(*) AS n FROM old_links GROUP BY actor_id ORDER BY actor_id) d
         WHERE c.actor_id = d.actor_id;
    ELSE
        INSERT INTO actor_entry_counts AS c (actor_id, entry_count)
        SELECT actor_id, sum(n) FROM (
            SELECT actor_id, 1 AS n FROM new_links
            UNION ALL
            SELECT actor_id, -1 FROM old_links
        ) d GROUP BY actor_id HAVING sum(n) <> 0 ORDER BY actor_id
        ON CONFLICT (actor_id) DO UPDATE SET entry_count = c.entry_count + excluded.entry_count;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION sitrep_source_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO source_entry_counts AS c (source_id, entry_count)
        SELECT source_id, count(*) FROM new_links GROUP BY source_id ORDER BY source_id
        ON CONFLICT (source_id) DO UPDATE SET entry_count = c.entry_count + excluded.entry_count;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE source_entry_counts c SET entry_count = c.entry_count - d.n
          FROM (SELECT source_id, count(*) AS n FROM old_links GROUP BY source_id ORDER BY source_id) d
         WHERE c.source_id = d.source_id;
    ELSE
        INSERT INTO source_entry_counts AS c (source_id, entry_count)
        SELECT source_id, sum(n) FROM (
            SELECT source_id, 1 AS n FROM new_links
            UNION ALL
            SELECT source_id, -1 FROM old_links
        ) d GROUP BY source_id HAVING sum(n) <> 0 ORDER BY source_id
        ON CONFLICT (source_id) DO UPDATE SET entry_count = c.entry_count + excluded.entry_count;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER entry_actors_count_insert AFTER INSERT ON entry_actors
    REFERENCING NEW TABLE AS new_links FOR EACH STATEMENT EXECUTE FUNCTION sitrep_actor_counts();
CREATE TRIGGER entry_actors_count_delete AFTER DELETE ON entry_actors
    REFERENCING OLD TABLE AS old_links FOR EACH STATEMENT EXECUTE FUNCTION sitrep_actor_counts();
CREATE TRIGGER entry_actors_count_update AFTER UPDATE ON entry_actors
    REFERENCING OLD TABLE AS old_links NEW TABLE AS new_links FOR EACH STATEMENT EXECUTE FUNCTION sitrep_actor_counts();

CREATE TRIGGER entry_sources_count_insert AFTER INSERT ON entry_sources
    REFERENCING NEW TABLE AS new_links FOR EACH STATEMENT EXECUTE FUNCTION sitrep_source_counts();
CREATE TRIGGER entry_sources_count_delete AFTER DELETE ON entry_sources
    REFERENCING OLD TABLE AS old_links FOR EACH STATEMENT EXECUTE FUNCTION sitrep_source_counts();
CREATE TRIGGER entry_sources_count_update AFTER UPDATE ON entry_sources
    REFERENCING OLD TABLE AS old_links NEW TABLE AS new_links FOR EACH STATEMENT EXECUTE FUNCTION sitrep_source_counts();

-- links that exist already (a database migrated after it was filled)
INSERT INTO actor_entry_counts (actor_id, entry_count)
SELECT actor_id, count(*) FROM entry_actors GROUP BY actor_id;
INSERT INTO source_entry_counts (source_id, entry_count)
SELECT source_id, count(*) FROM entry_sources GROUP BY source_id;
