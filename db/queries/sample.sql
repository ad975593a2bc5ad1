-- name: sample_lock
-- Serialise sample loaders for the rest of the transaction ("sitrep" sample, as a number).
SELECT pg_advisory_xact_lock(8316306221593264193)  -- 0x7369747265700041

-- name: sample_has_blogs
-- Whether the database holds any blog at all.
SELECT EXISTS (SELECT 1 FROM blogs)
