-- name: graph_entries_by_ids
-- Entries by id (GraphQL node lookups), any order.
SELECT id, blog_id, published_at, updated_at, created_at, kind, headline, body
  FROM entries WHERE id = ANY($1::bigint[])

-- name: graph_blogs_by_ids
-- Blogs by id.
SELECT b.id, b.slug, b.title, b.standfirst, b.status, b.authors, b.summary, b.hero_image, b.source_url, b.published_at,
       b.created_at, b.updated_at, (SELECT count(*) FROM entries e WHERE e.blog_id = b.id) AS entry_count
  FROM blogs b WHERE b.id = ANY($1::bigint[])

-- name: graph_blogs_by_slugs
-- Blogs by slug.
SELECT b.id, b.slug, b.title, b.standfirst, b.status, b.authors, b.summary, b.hero_image, b.source_url, b.published_at,
       b.created_at, b.updated_at, (SELECT count(*) FROM entries e WHERE e.blog_id = b.id) AS entry_count
  FROM blogs b WHERE b.slug = ANY($1::text[])

-- name: graph_actors_by_ids
-- Actors by id, with their entry counts.
SELECT a.id, a.slug, a.name, a.kind, a.aliases, a.country, a.description, a.created_at, a.updated_at,
       COALESCE(c.entry_count, 0) AS entry_count
  FROM actors a LEFT JOIN actor_entry_counts c ON c.actor_id = a.id
 WHERE a.id = ANY($1::bigint[])

-- name: graph_actors_by_slugs
-- Actors by slug, with their entry counts.
SELECT a.id, a.slug, a.name, a.kind, a.aliases, a.country, a.description, a.created_at, a.updated_at,
       COALESCE(c.entry_count, 0) AS entry_count
  FROM actors a LEFT JOIN actor_entry_counts c ON c.actor_id = a.id
 WHERE a.slug = ANY($1::text[])

-- name: graph_locations_by_ids
-- Locations by id.
SELECT l.id, l.slug, l.name, l.kind, l.parent_id, l.latitude, l.longitude, l.aliases, l.country, l.description,
       l.created_at, l.updated_at, COALESCE(n.entry_count, 0) AS entry_count
  FROM locations l LEFT JOIN location_entry_counts n ON n.location_id = l.id
 WHERE l.id = ANY($1::bigint[])

-- name: graph_locations_by_slugs
-- Locations by slug.
SELECT l.id, l.slug, l.name, l.kind, l.parent_id, l.latitude, l.longitude, l.aliases, l.country, l.description,
       l.created_at, l.updated_at, COALESCE(n.entry_count, 0) AS entry_count
  FROM locations l LEFT JOIN location_entry_counts n ON n.location_id = l.id
 WHERE l.slug = ANY($1::text[])

-- name: graph_sources_by_ids
-- Sources by id, with their entry counts.
SELECT s.id, s.slug, s.name, s.kind, s.url, s.aliases, s.description, s.created_at, s.updated_at,
       COALESCE(c.entry_count, 0) AS entry_count
  FROM sources s LEFT JOIN source_entry_counts c ON c.source_id = s.id
 WHERE s.id = ANY($1::bigint[])

-- name: graph_sources_by_slugs
-- Sources by slug, with their entry counts.
SELECT s.id, s.slug, s.name, s.kind, s.url, s.aliases, s.description, s.created_at, s.updated_at,
       COALESCE(c.entry_count, 0) AS entry_count
  FROM sources s LEFT JOIN source_entry_counts c ON c.source_id = s.id
 WHERE s.slug = ANY($1::text[])

-- name: graph_entry_actors
-- The actors of these entries with their role, in each entry speakers first, then by name.
SELECT ea.entry_id, ea.role, a.id, a.slug, a.name, a.kind, a.aliases, a.country, a.description, a.created_at, a.updated_at,
       COALESCE(c.entry_count, 0) AS entry_count
  FROM entry_actors ea
  JOIN actors a ON a.id = ea.actor_id
  LEFT JOIN actor_entry_counts c ON c.actor_id = a.id
 WHERE ea.entry_id = ANY($1::bigint[])
 ORDER BY ea.entry_id, ea.role DESC, a.name, a.id

-- name: graph_entry_locations
-- The locations of these entries, in each entry by name.
SELECT el.entry_id, l.id, l.slug, l.name, l.kind, l.parent_id, l.latitude, l.longitude, l.aliases, l.country,
       l.description, l.created_at, l.updated_at, COALESCE(n.entry_count, 0) AS entry_count
  FROM entry_locations el
  JOIN locations l ON l.id = el.location_id
  LEFT JOIN location_entry_counts n ON n.location_id = l.id
 WHERE el.entry_id = ANY($1::bigint[])
 ORDER BY el.entry_id, l.name, l.id

-- name: graph_entry_sources
-- The sources of these entries, in each entry by name.
SELECT es.entry_id, s.id, s.slug, s.name, s.kind, s.url, s.aliases, s.description, s.created_at, s.updated_at,
       COALESCE(c.entry_count, 0) AS entry_count
  FROM entry_sources es
  JOIN sources s ON s.id = es.source_id
  LEFT JOIN source_entry_counts c ON c.source_id = s.id
 WHERE es.entry_id = ANY($1::bigint[])
 ORDER BY es.entry_id, s.name, s.id

-- name: graph_location_children
-- The direct children of these locations, by name.
SELECT l.id, l.slug, l.name, l.kind, l.parent_id, l.latitude, l.longitude, l.aliases, l.country, l.description,
       l.created_at, l.updated_at, COALESCE(n.entry_count, 0) AS entry_count
  FROM locations l LEFT JOIN location_entry_counts n ON n.location_id = l.id
 WHERE l.parent_id = ANY($1::bigint[])
 ORDER BY l.parent_id, l.name, l.id

-- name: graph_location_ancestors
-- The ancestors of these locations, outermost first as REST lists them (the location itself excluded).
SELECT c.location_id AS of_id, l.id, l.slug, l.name, l.kind, l.parent_id, l.latitude, l.longitude, l.aliases,
       l.country, l.description, l.created_at, l.updated_at, COALESCE(n.entry_count, 0) AS entry_count
  FROM location_closure c
  JOIN locations l ON l.id = c.ancestor_id
  LEFT JOIN location_entry_counts n ON n.location_id = l.id
 WHERE c.location_id = ANY($1::bigint[]) AND c.depth > 0
 ORDER BY c.location_id, c.depth DESC
