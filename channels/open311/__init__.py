"""Open311 GeoReport v2: civic apps list the catalogue as services, file reports as service
requests (with an api_key issued by `gridgov open311 keys add`) and follow their status.

`models` holds the keys and what a request carried beyond the case, `keys` issues and checks
keys, `service` maps between GeoReport and cases (through the one intake), `render` writes
the spec's XML and JSON."""
