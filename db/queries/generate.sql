-- name: generate_lock_tables
-- Hold off other writers (readers carry on) while the generator reserves and fills id ranges.
LOCK TABLE blogs, entries, actors, locations, sources, entry_actors, entry_locations, entry_sources, media
    IN SHARE ROW EXCLUSIVE MODE

-- name: generate_id_floors
-- The highest id each table has used, counting ids its identity sequence handed out to since-deleted rows.
SELECT t.name,
       GREATEST(t.max_id, COALESCE(pg_sequence_last_value(pg_get_serial_sequence(t.name, 'id')::regclass), 0)) AS floor
  FROM (VALUES ('blogs', (SELECT COALESCE(max(id), 0) FROM blogs)),
               ('entries', (SELECT COALESCE(max(id), 0) FROM entries)),
               ('actors', (SELECT COALESCE(max(id), 0) FROM actors)),
               ('locations', (SELECT COALESCE(max(id), 0) FROM locations)),
               ('sources', (SELECT COALESCE(max(id), 0) FROM sources)),
               ('media', (SELECT COALESCE(max(id), 0) FROM media))) AS t (name, max_id)

-- name: generate_taken_slugs
-- Every slug already in use, per table, so generated ones can step around them.
SELECT 'blogs' AS name, slug FROM blogs
UNION ALL SELECT 'actors', slug FROM actors
UNION ALL SELECT 'locations', slug FROM locations
UNION ALL SELECT 'sources', slug FROM sources

-- name: generate_fix_sequences
-- Move each identity sequence past the ids the generator wrote, so an INSERT without id continues after them.
SELECT setval(pg_get_serial_sequence(t.name, 'id'), t.last_id)
  FROM unnest($1::text[], $2::bigint[]) AS t (name, last_id)
 WHERE t.last_id > 0

-- name: generate_actor_entry_counts
-- Add generated links to the per-actor entry counts (their statement triggers were bypassed).
INSERT INTO actor_entry_counts AS c (actor_id, entry_count)
SELECT t.actor_id, t.n FROM unnest($1::bigint[], $2::bigint[]) AS t (actor_id, n) WHERE t.n > 0 ORDER BY t.actor_id
    ON CONFLICT (actor_id) DO UPDATE SET entry_count = c.entry_count + excluded.entry_count

-- name: generate_source_entry_counts
-- Add generated links to the per-source entry counts (their statement triggers were bypassed).
INSERT INTO source_entry_counts AS c (source_id, entry_count)
SELECT t.source_id, t.n FROM unnest($1::bigint[], $2::bigint[]) AS t (source_id, n) WHERE t.n > 0 ORDER BY t.source_id
    ON CONFLICT (source_id) DO UPDATE SET entry_count = c.entry_count + excluded.entry_count

-- name: generate_location_entry_counts
-- Add generated links to the per-location entry counts (their statement triggers were bypassed).
INSERT INTO location_entry_counts AS c (location_id, entry_count)
SELECT t.location_id, t.n FROM unnest($1::bigint[], $2::bigint[]) AS t (location_id, n) WHERE t.n > 0 ORDER BY t.location_id
    ON CONFLICT (location_id) DO UPDATE SET entry_count = c.entry_count + excluded.entry_count

-- name: generate_analyze
-- Fresh planner statistics for every table the generator wrote to.
ANALYZE blogs, entries, actors, locations, location_closure, sources, entry_actors, entry_locations, entry_sources, media,
        actor_entry_counts, source_entry_counts, location_entry_counts, entry_bits, search_terms
