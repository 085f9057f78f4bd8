"""OCI stores: a registry (:mod:`.registry`) and an image-layout folder (:mod:`.layout`)."""
