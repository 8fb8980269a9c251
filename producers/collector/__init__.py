"""The site collector (`printfleet collector`): a driver per printer, the record
builder that keeps only what the schemas have a field for (and pseudonymises), the
spool, and the uploader to the gateway. Runs at the customer's site; needs no extra."""
