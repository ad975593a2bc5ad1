-- name: count_locations_under
-- How many locations lie under the locations in $1 (themselves included).
SELECT count(DISTINCT location_id) FROM location_closure WHERE ancestor_id = ANY($1::bigint[])

-- name: actor_counts
-- (actor_id, entry_count) for the actors in $1 that have any entries.
SELECT actor_id, entry_count FROM actor_entry_counts WHERE actor_id = ANY($1::bigint[])

-- name: get_entry
-- One entry's own columns by id.
SELECT e.id, e.blog_id, e.published_at, e.updated_at, e.created_at, e.kind, e.headline, e.body
  FROM entries e WHERE e.id = $1

-- name: entry_blogs
-- Blog references for a batch of blog ids.
SELECT id, slug, title FROM blogs WHERE id = ANY($1::bigint[])

-- name: entry_actors
-- The actors of a batch of entries, speakers first, then by name.
SELECT ea.entry_id, ea.role, a.id, a.slug, a.name, a.kind, a.country
  FROM entry_actors ea JOIN actors a ON a.id = ea.actor_id
 WHERE ea.entry_id = ANY($1::bigint[])
 ORDER BY ea.entry_id, ea.role DESC, a.name COLLATE "C", a.id

-- name: entry_locations
-- The locations of a batch of entries, by name.
SELECT el.entry_id, l.id, l.slug, l.name, l.kind, l.country, l.latitude, l.longitude, l.parent_id
  FROM entry_locations el JOIN locations l ON l.id = el.location_id
 WHERE el.entry_id = ANY($1::bigint[])
 ORDER BY el.entry_id, l.name COLLATE "C", l.id

-- name: entry_sources
-- The sources of a batch of entries, by name.
SELECT es.entry_id, s.id, s.slug, s.name, s.kind
  FROM entry_sources es JOIN sources s ON s.id = es.source_id
 WHERE es.entry_id = ANY($1::bigint[])
 ORDER BY es.entry_id, s.name COLLATE "C", s.id

-- name: entry_media
-- The media of a batch of entries, in page order.
SELECT entry_id, position, kind, url, caption, credit, alt_text,
       embed_author, embed_handle, embed_date, embed_text, embed_url
  FROM media
 WHERE entry_id = ANY($1::bigint[])
 ORDER BY entry_id, position

-- name: entry_links
-- The blogs ($2), actors, locations, sources and media of a batch of entries ($1) in one result, `link` saying which ('b', 'a', 'l', 's', 'm'): each entry's lists in entry_blogs', entry_actors', entry_locations', entry_sources' and entry_media's order.
SELECT * FROM (
SELECT 'b' AS link, NULL::bigint AS entry_id, NULL::text AS role, b.id, b.slug, b.title AS name,
       NULL::text AS kind, NULL::text AS country,
       NULL::double precision AS latitude, NULL::double precision AS longitude, NULL::bigint AS parent_id,
       NULL::integer AS position, NULL::text AS url, NULL::text AS caption, NULL::text AS credit,
       NULL::text AS alt_text, NULL::text AS embed_author, NULL::text AS embed_handle, NULL::date AS embed_date,
       NULL::text AS embed_text, NULL::text AS embed_url
  FROM blogs b
 WHERE b.id = ANY($2::bigint[])
UNION ALL
SELECT 'a', ea.entry_id, ea.role, a.id, a.slug, a.name, a.kind, a.country,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
  FROM entry_actors ea JOIN actors a ON a.id = ea.actor_id
 WHERE ea.entry_id = ANY($1::bigint[])
UNION ALL
SELECT 'l', el.entry_id, NULL, l.id, l.slug, l.name, l.kind, l.country, l.latitude, l.longitude, l.parent_id,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
  FROM entry_locations el JOIN locations l ON l.id = el.location_id
 WHERE el.entry_id = ANY($1::bigint[])
UNION ALL
SELECT 's', es.entry_id, NULL, s.id, s.slug, s.name, s.kind, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
  FROM entry_sources es JOIN sources s ON s.id = es.source_id
 WHERE es.entry_id = ANY($1::bigint[])
UNION ALL
SELECT 'm', m.entry_id, NULL, NULL, NULL, NULL, m.kind, NULL, NULL, NULL, NULL,
       m.position, m.url, m.caption, m.credit, m.alt_text, m.embed_author, m.embed_handle, m.embed_date,
       m.embed_text, m.embed_url
  FROM media m
 WHERE m.entry_id = ANY($1::bigint[])
) links
 ORDER BY link, entry_id, role DESC, name COLLATE "C", id, position
