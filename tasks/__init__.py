"""augflow's stages: one module each (ingest, augment, train, evaluate), plus what they share."""
