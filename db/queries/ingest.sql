-- Queries of the page importer (db/ingest/store.py). Sets of rows travel as one JSON
-- document or as parallel arrays, so an import costs the same round trips for 1 entry or 500.

-- name: import_upsert_blog
-- Insert a blog by slug, or update the fields that differ; no row back when nothing changed.
INSERT INTO blogs (slug, title, standfirst, status, authors, summary, hero_image, published_at)
VALUES ($1, $2, $3, $4, $5::text[], $6::text[], $7::text::jsonb, $8)
ON CONFLICT (slug) DO UPDATE
   SET title = EXCLUDED.title,
       standfirst = EXCLUDED.standfirst,
       status = EXCLUDED.status,
       authors = EXCLUDED.authors,
       summary = EXCLUDED.summary,
       hero_image = EXCLUDED.hero_image,
       published_at = EXCLUDED.published_at
 WHERE (blogs.title, blogs.standfirst, blogs.status, blogs.authors, blogs.summary, blogs.hero_image, blogs.published_at)
       IS DISTINCT FROM
       (EXCLUDED.title, EXCLUDED.standfirst, EXCLUDED.status, EXCLUDED.authors, EXCLUDED.summary, EXCLUDED.hero_image, EXCLUDED.published_at)
RETURNING id, (xmax = 0) AS inserted

-- name: import_lock_blog
-- The blog's id, its row locked so that two imports into one blog take turns.
SELECT id FROM blogs WHERE slug = $1 FOR UPDATE

-- name: import_existing_entries
-- The blog's entries with the given external keys, as stored.
SELECT id, external_key, published_at, headline, body, kind
  FROM entries
 WHERE blog_id = $1 AND external_key = ANY($2::text[])

-- name: import_existing_media
-- The media of the given entries, in order.
SELECT entry_id, kind, url, caption, credit, alt_text,
       embed_author, embed_handle, embed_date, embed_text, embed_url
  FROM media
 WHERE entry_id = ANY($1::bigint[])
 ORDER BY entry_id, position

-- name: import_existing_actor_links
-- The actors linked to the given entries, with their roles.
SELECT entry_id, actor_id, role FROM entry_actors WHERE entry_id = ANY($1::bigint[])

-- name: import_existing_location_links
-- The locations linked to the given entries.
SELECT entry_id, location_id FROM entry_locations WHERE entry_id = ANY($1::bigint[])

-- name: import_existing_source_links
-- The sources linked to the given entries.
SELECT entry_id, source_id FROM entry_sources WHERE entry_id = ANY($1::bigint[])

-- name: import_actor_ids
-- Ids of the actors with the given slugs (unknown slugs are absent).
SELECT slug, id FROM actors WHERE slug = ANY($1::text[])

-- name: import_location_ids
-- Ids of the locations with the given slugs (unknown slugs are absent).
SELECT slug, id FROM locations WHERE slug = ANY($1::text[])

-- name: import_source_ids
-- Ids of the sources with the given slugs (unknown slugs are absent).
SELECT slug, id FROM sources WHERE slug = ANY($1::text[])

-- name: import_insert_entries
-- Insert entries given as a JSON array of objects; their ids and keys come back.
INSERT INTO entries (blog_id, external_key, published_at, headline, body, kind)
SELECT $1, x.external_key, x.published_at, x.headline, x.body, x.kind
  FROM jsonb_to_recordset($2::text::jsonb)
       AS x(external_key text, published_at timestamptz, headline text, body text[], kind text)
RETURNING id, external_key

-- name: import_update_entries
-- Rewrite entries given as a JSON array of objects with their ids.
UPDATE entries e
   SET published_at = x.published_at, headline = x.headline, body = x.body, kind = x.kind
  FROM jsonb_to_recordset($1::text::jsonb)
       AS x(id bigint, published_at timestamptz, headline text, body text[], kind text)
 WHERE e.id = x.id

-- name: import_touch_entries
-- Mark entries changed whose media or links changed but whose own columns did not.
UPDATE entries SET updated_at = now() WHERE id = ANY($1::bigint[])

-- name: import_delete_media
-- Drop the media of the given entries (they are written again whole).
DELETE FROM media WHERE entry_id = ANY($1::bigint[])

-- name: import_insert_media
-- Insert media given as a JSON array of objects.
INSERT INTO media (entry_id, position, kind, url, caption, credit, alt_text,
                   embed_author, embed_handle, embed_date, embed_text, embed_url)
SELECT x.entry_id, x.position, x.kind, x.url, x.caption, x.credit, x.alt_text,
       x.embed_author, x.embed_handle, x.embed_date, x.embed_text, x.embed_url
  FROM jsonb_to_recordset($1::text::jsonb)
       AS x(entry_id bigint, position int, kind text, url text, caption text, credit text, alt_text text,
            embed_author text, embed_handle text, embed_date date, embed_text text, embed_url text)

-- name: import_delete_actor_links
-- Drop the actor links of the given entries (they are written again whole).
DELETE FROM entry_actors WHERE entry_id = ANY($1::bigint[])

-- name: import_insert_actor_links
-- Link entries to actors, copying each entry's published_at.
INSERT INTO entry_actors (entry_id, actor_id, role, published_at)
SELECT x.entry_id, x.actor_id, x.role, e.published_at
  FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS x(entry_id, actor_id, role)
  JOIN entries e ON e.id = x.entry_id

-- name: import_delete_location_links
-- Drop the location links of the given entries (they are written again whole).
DELETE FROM entry_locations WHERE entry_id = ANY($1::bigint[])

-- name: import_insert_location_links
-- Link entries to locations, copying each entry's published_at.
INSERT INTO entry_locations (entry_id, location_id, published_at)
SELECT x.entry_id, x.location_id, e.published_at
  FROM unnest($1::bigint[], $2::bigint[]) AS x(entry_id, location_id)
  JOIN entries e ON e.id = x.entry_id

-- name: import_delete_source_links
-- Drop the source links of the given entries (they are written again whole).
DELETE FROM entry_sources WHERE entry_id = ANY($1::bigint[])

-- name: import_insert_source_links
-- Link entries to sources, copying each entry's published_at.
INSERT INTO entry_sources (entry_id, source_id, published_at)
SELECT x.entry_id, x.source_id, e.published_at
  FROM unnest($1::bigint[], $2::bigint[]) AS x(entry_id, source_id)
  JOIN entries e ON e.id = x.entry_id

-- name: import_ensure_locations
-- Create the world gazetteer's places that entries name, unless a location has the slug: one
-- level at a time (countries, then their cities), each with its parent by slug.
WITH x AS (
    SELECT * FROM jsonb_to_recordset($1::text::jsonb)
           AS x(slug text, name text, kind text, country text, latitude double precision,
                longitude double precision, geonameid bigint, parent text)
), ins AS (
    INSERT INTO locations (slug, name, kind, parent_id, latitude, longitude, country)
    SELECT x.slug, x.name, x.kind, p.id, x.latitude, x.longitude, x.country
      FROM x LEFT JOIN locations p ON p.slug = x.parent
     ORDER BY x.slug
    ON CONFLICT (slug) DO NOTHING
    RETURNING id, slug
)
INSERT INTO location_geonames (location_id, geonameid)
SELECT ins.id, x.geonameid FROM ins JOIN x USING (slug)
ON CONFLICT DO NOTHING

-- name: import_ensure_actors
-- Create the actors the linker discovered, unless an actor has the slug, marked discovered with
-- the phrase that found them.
WITH x AS (
    SELECT * FROM jsonb_to_recordset($1::text::jsonb)
           AS x(slug text, name text, kind text, country text, aliases text[], discovered_by text)
), ins AS (
    INSERT INTO actors (slug, name, kind, country, aliases)
    SELECT x.slug, x.name, x.kind, x.country, x.aliases FROM x ORDER BY x.slug
    ON CONFLICT (slug) DO NOTHING
    RETURNING id, slug
)
INSERT INTO actor_discoveries (actor_id, discovered_by)
SELECT ins.id, left(x.discovered_by, 500) FROM ins JOIN x USING (slug)
