"""sitrep's data layer: migrations, named queries and async query functions over asyncpg.

It imports neither `api` nor `schema`; both skins call into it.
"""
