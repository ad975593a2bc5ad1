-- name: write_resolve_blog
-- A blog's id by id ($1) or slug ($2); no row when it does not exist.
SELECT id FROM blogs WHERE id = $1 OR slug = $2

-- name: write_resolve_actors
-- Actor ids and slugs for a mix of ids ($1) and slugs ($2).
SELECT id, slug FROM actors WHERE id = ANY($1::bigint[]) OR slug = ANY($2::text[])

-- name: write_resolve_locations
-- Location ids and slugs for a mix of ids ($1) and slugs ($2).
SELECT id, slug FROM locations WHERE id = ANY($1::bigint[]) OR slug = ANY($2::text[])

-- name: write_resolve_sources
-- Source ids and slugs for a mix of ids ($1) and slugs ($2).
SELECT id, slug FROM sources WHERE id = ANY($1::bigint[]) OR slug = ANY($2::text[])

-- name: write_lock_actors
-- Lock an actor for a conditional write (If-Match); its id, or no row.
SELECT id FROM actors WHERE id = $1 FOR UPDATE

-- name: write_lock_locations
-- Lock a location for a conditional write (If-Match); its id, or no row.
SELECT id FROM locations WHERE id = $1 FOR UPDATE

-- name: write_lock_sources
-- Lock a source for a conditional write (If-Match); its id, or no row.
SELECT id FROM sources WHERE id = $1 FOR UPDATE

-- name: write_insert_blog
-- A new blog; its id.
INSERT INTO blogs (slug, title, standfirst, status, authors, summary, hero_image, source_url, published_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING id

-- name: write_insert_entry
-- A new entry ($1 blog, $2 published_at, $3 headline, $4 body, $5 kind); its id.
INSERT INTO entries (blog_id, published_at, headline, body, kind)
VALUES ($1, $2, $3, $4, $5)
RETURNING id

-- name: write_lock_entry
-- Lock an entry for update; its id, or no row when it does not exist.
SELECT id FROM entries WHERE id = $1 FOR UPDATE

-- name: write_update_entry
-- Set an entry's columns; each parameter NULL keeps the column ($2 blog_id, $3 published_at, $4 headline, $5 body, $6 kind).
UPDATE entries
   SET blog_id = COALESCE($2, blog_id),
       published_at = COALESCE($3, published_at),
       headline = COALESCE($4, headline),
       body = COALESCE($5, body),
       kind = COALESCE($6, kind)
 WHERE id = $1

-- name: write_delete_entry
-- Delete an entry (links and media go with it); its id, or no row when it did not exist.
DELETE FROM entries WHERE id = $1 RETURNING id

-- name: write_clear_entry_actors
-- Remove every actor link of an entry.
DELETE FROM entry_actors WHERE entry_id = $1

-- name: write_clear_entry_locations
-- Remove every location link of an entry.
DELETE FROM entry_locations WHERE entry_id = $1

-- name: write_clear_entry_sources
-- Remove every source link of an entry.
DELETE FROM entry_sources WHERE entry_id = $1

-- name: write_clear_entry_media
-- Remove every media item of an entry.
DELETE FROM media WHERE entry_id = $1

-- name: write_link_actors
-- Link actors ($2 ids, $3 roles, pairwise) to entry $1, copying its published_at.
INSERT INTO entry_actors (entry_id, actor_id, role, published_at)
SELECT e.id, l.actor_id, l.role, e.published_at
  FROM entries e, unnest($2::bigint[], $3::text[]) AS l (actor_id, role)
 WHERE e.id = $1

-- name: write_link_locations
-- Link locations ($2 ids) to entry $1.
INSERT INTO entry_locations (entry_id, location_id, published_at)
SELECT e.id, l, e.published_at FROM entries e, unnest($2::bigint[]) AS l WHERE e.id = $1

-- name: write_link_sources
-- Link sources ($2 ids) to entry $1.
INSERT INTO entry_sources (entry_id, source_id, published_at)
SELECT e.id, s, e.published_at FROM entries e, unnest($2::bigint[]) AS s WHERE e.id = $1

-- name: write_insert_media
-- One media item of entry $1 at position $2.
INSERT INTO media (entry_id, position, kind, url, caption, credit, alt_text,
                   embed_author, embed_handle, embed_date, embed_text, embed_url)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)

-- name: write_entry_doc
-- An entry as REST answers it (and the change feed carries it), or NULL.
SELECT sitrep_entry_doc($1)

-- name: write_insert_actor
-- A new actor; its id.
INSERT INTO actors (slug, name, kind, aliases, country, description)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id

-- name: write_update_actor
-- Set an actor's columns ($1 id; NULL keeps a column, except country/description which take $8/$9 flags).
UPDATE actors
   SET slug = COALESCE($2, slug), name = COALESCE($3, name), kind = COALESCE($4, kind),
       aliases = COALESCE($5, aliases),
       country = CASE WHEN $8 THEN $6 ELSE country END,
       description = CASE WHEN $9 THEN $7 ELSE description END
 WHERE id = $1
RETURNING id

-- name: write_get_actor
-- An actor as REST answers it.
SELECT a.id, a.slug, a.name, a.kind, a.aliases, a.country, a.description, a.created_at, a.updated_at,
       (SELECT count(*) FROM entry_actors ea WHERE ea.actor_id = a.id) AS entry_count
  FROM actors a WHERE a.id = $1

-- name: write_insert_location
-- A new location; its id.
INSERT INTO locations (slug, name, kind, parent_id, latitude, longitude, aliases, country, description)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING id

-- name: write_update_location
-- Set a location's columns ($1 id; NULL keeps; parent/country/description take flags $11/$12/$13).
UPDATE locations
   SET slug = COALESCE($2, slug), name = COALESCE($3, name), kind = COALESCE($4, kind),
       parent_id = CASE WHEN $11 THEN $5 ELSE parent_id END,
       latitude = COALESCE($6, latitude), longitude = COALESCE($7, longitude),
       aliases = COALESCE($8, aliases),
       country = CASE WHEN $12 THEN $9 ELSE country END,
       description = CASE WHEN $13 THEN $10 ELSE description END
 WHERE id = $1
RETURNING id

-- name: write_get_location
-- A location as REST answers it, without parent and ancestors.
SELECT id, slug, name, kind, parent_id, latitude, longitude, aliases, country, description, created_at, updated_at
  FROM locations WHERE id = $1

-- name: write_location_ancestors
-- A location's ancestors, outermost first.
SELECT l.id, l.slug, l.name, l.kind, l.country, l.latitude, l.longitude, l.parent_id
  FROM location_closure c JOIN locations l ON l.id = c.ancestor_id
 WHERE c.location_id = $1 AND c.depth > 0
 ORDER BY c.depth DESC

-- name: write_insert_source
-- A new source; its id.
INSERT INTO sources (slug, name, kind, url, aliases, description)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id

-- name: write_update_source
-- Set a source's columns ($1 id; NULL keeps; url/description take flags $7/$8).
UPDATE sources
   SET slug = COALESCE($2, slug), name = COALESCE($3, name), kind = COALESCE($4, kind),
       url = CASE WHEN $7 THEN $5 ELSE url END,
       aliases = COALESCE($6, aliases),
       description = CASE WHEN $8 THEN $9 ELSE description END
 WHERE id = $1
RETURNING id

-- name: write_get_source
-- A source as REST answers it.
SELECT s.id, s.slug, s.name, s.kind, s.url, s.aliases, s.description, s.created_at, s.updated_at,
       (SELECT count(*) FROM entry_sources es WHERE es.source_id = s.id) AS entry_count
  FROM sources s WHERE s.id = $1

-- name: write_get_blog
-- A blog as REST answers it.
SELECT b.id, b.slug, b.title, b.standfirst, b.status, b.authors, b.summary, b.hero_image, b.source_url,
       b.published_at, b.created_at, b.updated_at,
       (SELECT count(*) FROM entries e WHERE e.blog_id = b.id) AS entry_count
  FROM blogs b WHERE b.id = $1

-- name: idempotency_lookup
-- The first answer to a write under this caller ($1) and key ($2), if less than a day old.
SELECT request_hash, status, body, location
  FROM idempotency_keys
 WHERE caller = $1 AND key = $2 AND created_at > now() - interval '1 day'

-- name: idempotency_remember
-- Keep the answer to a write under this caller and key (replacing one more than a day old); no row when another request holds the key.
INSERT INTO idempotency_keys AS k (caller, key, request_hash, status, body, location)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (caller, key) DO UPDATE
   SET request_hash = excluded.request_hash, status = excluded.status, body = excluded.body,
       location = excluded.location, created_at = now()
 WHERE k.created_at <= now() - interval '1 day'
RETURNING key

-- name: idempotency_prune
-- Forget up to 100 keys more than a day old (skipping rows another writer is pruning).
DELETE FROM idempotency_keys
 WHERE ctid = ANY (ARRAY(
       SELECT ctid FROM idempotency_keys
        WHERE created_at < now() - interval '1 day'
        LIMIT 100 FOR UPDATE SKIP LOCKED))
