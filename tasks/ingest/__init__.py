"""The ingest stage: a dataset (Fashion-MNIST's files, an image folder or an archive) into data/raw and each seed's
training set."""
