"""Storage: the metadata database (``store.metadata``) and content-addressed blobs (``store.blobs``)."""
