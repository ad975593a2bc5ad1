-- name: resolve_blogs
-- Blog ids for a mix of ids ($1) and slugs ($2): one row per blog that exists.
SELECT id, slug FROM blogs WHERE id = ANY($1::bigint[]) OR slug = ANY($2::text[])

-- name: resolve_actors
-- Actor ids for a mix of ids ($1) and slugs ($2).
SELECT id, slug FROM actors WHERE id = ANY($1::bigint[]) OR slug = ANY($2::text[])

-- name: resolve_locations
-- Location ids for a mix of ids ($1) and slugs ($2).
SELECT id, slug FROM locations WHERE id = ANY($1::bigint[]) OR slug = ANY($2::text[])

-- name: resolve_sources
-- Source ids for a mix of ids ($1) and slugs ($2).
SELECT id, slug FROM sources WHERE id = ANY($1::bigint[]) OR slug = ANY($2::text[])

-- name: catalog_refs
-- The references of blogs ($1), actors ($2), locations ($3) and sources ($4) by id, `ref` saying which ('b', 'a', 'l', 's').
SELECT 'b' AS ref, id, slug, title AS name, NULL::text AS kind, NULL::text AS country,
       NULL::double precision AS latitude, NULL::double precision AS longitude, NULL::bigint AS parent_id
  FROM blogs WHERE id = ANY($1::bigint[])
UNION ALL
SELECT 'a', id, slug, name, kind, country, NULL, NULL, NULL FROM actors WHERE id = ANY($2::bigint[])
UNION ALL
SELECT 'l', id, slug, name, kind, country, latitude, longitude, parent_id FROM locations WHERE id = ANY($3::bigint[])
UNION ALL
SELECT 's', id, slug, name, kind, NULL, NULL, NULL, NULL FROM sources WHERE id = ANY($4::bigint[])
