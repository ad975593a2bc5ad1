"""sitrep's HTTP skin: the Litestar app, REST controllers, auth and the CLI."""
