-- Queries of the gazetteer loader (db/ingest/gazetteer.py) and the linker (db/ingest/linker.py).
-- Items travel as one JSON array per kind, so a load costs a handful of round trips.

-- name: gazetteer_upsert_actors
-- Insert actors by slug or update the fields that differ; one row back per insert or change.
INSERT INTO actors AS a (slug, name, kind, aliases, country, description)
SELECT x.slug, x.name, x.kind, x.aliases, x.country, x.description
  FROM jsonb_to_recordset($1::text::jsonb)
       AS x(slug text, name text, kind text, aliases text[], country text, description text)
ON CONFLICT (slug) DO UPDATE
   SET name = EXCLUDED.name, kind = EXCLUDED.kind, aliases = EXCLUDED.aliases,
       country = EXCLUDED.country, description = EXCLUDED.description
 WHERE (a.name, a.kind, a.aliases, a.country, a.description)
       IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.kind, EXCLUDED.aliases, EXCLUDED.country, EXCLUDED.description)
RETURNING (xmax = 0) AS inserted

-- name: gazetteer_upsert_locations
-- Insert locations by slug (parents are set afterwards) or update the fields that differ.
INSERT INTO locations AS l (slug, name, kind, latitude, longitude, aliases, country, description)
SELECT x.slug, x.name, x.kind, x.latitude, x.longitude, x.aliases, x.country, x.description
  FROM jsonb_to_recordset($1::text::jsonb)
       AS x(slug text, name text, kind text, latitude double precision, longitude double precision,
            aliases text[], country text, description text)
ON CONFLICT (slug) DO UPDATE
   SET name = EXCLUDED.name, kind = EXCLUDED.kind, latitude = EXCLUDED.latitude,
       longitude = EXCLUDED.longitude, aliases = EXCLUDED.aliases, country = EXCLUDED.country,
       description = EXCLUDED.description
 WHERE (l.name, l.kind, l.latitude, l.longitude, l.aliases, l.country, l.description)
       IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.kind, EXCLUDED.latitude, EXCLUDED.longitude,
                         EXCLUDED.aliases, EXCLUDED.country, EXCLUDED.description)
RETURNING l.slug, (xmax = 0) AS inserted

-- name: gazetteer_location_slugs
-- Which of the given location slugs exist.
SELECT slug FROM locations WHERE slug = ANY($1::text[])

-- name: gazetteer_set_parents
-- Point each location at its parent (by slug), touching only rows whose parent changes.
UPDATE locations l
   SET parent_id = p.id
  FROM unnest($1::text[], $2::text[]) AS x(slug, parent)
  LEFT JOIN locations p ON p.slug = x.parent
 WHERE l.slug = x.slug AND l.parent_id IS DISTINCT FROM p.id
RETURNING l.slug

-- name: gazetteer_upsert_sources
-- Insert sources by slug or update the fields that differ; one row back per insert or change.
INSERT INTO sources AS s (slug, name, kind, url, aliases, description)
SELECT x.slug, x.name, x.kind, x.url, x.aliases, x.description
  FROM jsonb_to_recordset($1::text::jsonb)
       AS x(slug text, name text, kind text, url text, aliases text[], description text)
ON CONFLICT (slug) DO UPDATE
   SET name = EXCLUDED.name, kind = EXCLUDED.kind, url = EXCLUDED.url,
       aliases = EXCLUDED.aliases, description = EXCLUDED.description
 WHERE (s.name, s.kind, s.url, s.aliases, s.description)
       IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.kind, EXCLUDED.url, EXCLUDED.aliases, EXCLUDED.description)
RETURNING (xmax = 0) AS inserted

-- name: gazetteer_is_empty
-- True when there is no actor, no location and no source yet.
SELECT NOT EXISTS (SELECT 1 FROM actors) AND NOT EXISTS (SELECT 1 FROM locations)
       AND NOT EXISTS (SELECT 1 FROM sources)

-- name: linker_actors
-- Every actor as the linker matches it.
SELECT slug, kind, name, aliases, country FROM actors ORDER BY id

-- name: linker_locations
-- Every location as the linker matches it, but those made from the world gazetteer (the
-- linker finds them there, under that gazetteer's rules).
SELECT slug, kind, name, aliases, country FROM locations l
 WHERE NOT EXISTS (SELECT 1 FROM location_geonames g WHERE g.location_id = l.id)
 ORDER BY id

-- name: linker_sources
-- Every source as the linker matches it.
SELECT slug, kind, name, aliases FROM sources ORDER BY id

-- name: linker_fingerprint
-- A digest of everything the linker compiles from (database, names, aliases, kinds, countries).
SELECT current_database() || ':' || md5(
    coalesce((SELECT string_agg(concat_ws('|', slug, kind, name, country, array_to_string(aliases, '|')), E'\n' ORDER BY id)
                FROM actors), '') || E'\f' ||
    coalesce((SELECT string_agg(concat_ws('|', slug, kind, name, country, array_to_string(aliases, '|')), E'\n' ORDER BY id)
                FROM locations l WHERE NOT EXISTS (SELECT 1 FROM location_geonames g WHERE g.location_id = l.id)), '') || E'\f' ||
    coalesce((SELECT string_agg(concat_ws('|', slug, kind, name, array_to_string(aliases, '|')), E'\n' ORDER BY id)
                FROM sources), ''))
