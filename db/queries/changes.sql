-- name: list_changes
-- The change feed after a seq, in seq order ($1 after, $2 limit).
SELECT seq, entity, entity_id, op, at, data
  FROM changes
 WHERE seq > $1
 ORDER BY seq
 LIMIT $2

-- name: list_entry_changes
-- Entry changes after a seq, in seq order ($1 after, $2 limit): what the entry stream replays.
SELECT seq, entity, entity_id, op, at, data
  FROM changes
 WHERE entity = 'entry' AND seq > $1
 ORDER BY seq
 LIMIT $2

-- name: last_change_seq
-- The highest committed seq (0 when the feed is empty).
SELECT COALESCE(max(seq), 0) FROM changes
