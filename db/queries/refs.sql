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
