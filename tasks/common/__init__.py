"""What the stages share: params and their schema, paths, files, errors, the data loader, the image transforms, the
statistics. It imports no stage."""
