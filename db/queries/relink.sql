-- Queries of `sitrep relink` (db/ingest/relink.py): re-link stored entries in batches.

-- name: relink_count_entries
-- How many entries there are to re-link.
SELECT count(*) FROM entries

-- name: relink_entries_after
-- The next batch of entries by id, with the text the linker reads (and its blog's, for context).
SELECT e.id, e.headline, e.body, e.blog_id, b.title, b.standfirst
  FROM entries e JOIN blogs b ON b.id = e.blog_id
 WHERE e.id > $1 ORDER BY e.id LIMIT $2

-- name: relink_ids
-- Every actor, location and source slug with its id.
SELECT 'actor' AS kind, slug, id FROM actors
UNION ALL SELECT 'location', slug, id FROM locations
UNION ALL SELECT 'source', slug, id FROM sources

-- name: relink_actor_links
-- The actor links of the given entries, with their roles.
SELECT entry_id, actor_id, role FROM entry_actors WHERE entry_id = ANY($1::bigint[])

-- name: relink_location_links
-- The location links of the given entries.
SELECT entry_id, location_id FROM entry_locations WHERE entry_id = ANY($1::bigint[])

-- name: relink_source_links
-- The source links of the given entries.
SELECT entry_id, source_id FROM entry_sources WHERE entry_id = ANY($1::bigint[])

-- name: relink_delete_links
-- Drop every link of the given entries (they are written again whole).
WITH a AS (DELETE FROM entry_actors WHERE entry_id = ANY($1::bigint[])),
     l AS (DELETE FROM entry_locations WHERE entry_id = ANY($1::bigint[]))
DELETE FROM entry_sources WHERE entry_id = ANY($1::bigint[])

-- name: relink_insert_actor_links
-- Link entries to actors, copying each entry's published_at.
INSERT INTO entry_actors (entry_id, actor_id, role, published_at)
SELECT x.entry_id, x.actor_id, x.role, e.published_at
  FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS x(entry_id, actor_id, role)
  JOIN entries e ON e.id = x.entry_id

-- name: relink_insert_location_links
-- Link entries to locations, copying each entry's published_at.
INSERT INTO entry_locations (entry_id, location_id, published_at)
SELECT x.entry_id, x.location_id, e.published_at
  FROM unnest($1::bigint[], $2::bigint[]) AS x(entry_id, location_id)
  JOIN entries e ON e.id = x.entry_id

-- name: relink_insert_source_links
-- Link entries to sources, copying each entry's published_at.
INSERT INTO entry_sources (entry_id, source_id, published_at)
SELECT x.entry_id, x.source_id, e.published_at
  FROM unnest($1::bigint[], $2::bigint[]) AS x(entry_id, source_id)
  JOIN entries e ON e.id = x.entry_id

-- name: relink_touch_entries
-- Mark the entries whose links changed as updated.
UPDATE entries SET updated_at = now() WHERE id = ANY($1::bigint[])
