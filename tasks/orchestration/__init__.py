"""Running the pipeline: stages at once, on Dask workers, as what-if experiments, under the project lock."""
