#!/bin/sh
# Run once by the postgres image on a fresh volume: the optional replica service's base backup
# and streaming connect as `comeback` (a superuser in this image). An existing volume needs the
# line added by hand, then `SELECT pg_reload_conf()`.
echo "host replication comeback all scram-sha-256" >> "$PGDATA/pg_hba.conf"
