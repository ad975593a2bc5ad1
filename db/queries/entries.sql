-- name: count_locations_under
-- How many locations lie under the locations in $1 (themselves included).
SELECT count(DISTINCT location_id) FROM location_closure WHERE ancestor_id = ANY($1::bigint[])

-- name: actor_counts
-- (actor_id, entry_count) for the actors in $1 that have any entries.
SELECT actor_id, entry_count FROM actor_entry_counts WHERE actor_id = ANY($1::bigint[])

-- name: entry_media
-- The media of a batch of entries, in page order.
SELECT entry_id, position, kind, url, caption, credit, alt_text,
       embed_author, embed_handle, embed_date, embed_text, embed_url
  FROM media
 WHERE entry_id = ANY($1::bigint[])
 ORDER BY entry_id, position
