"""detectron2 models: registry and zoo, safe weight loading, the engine, dataset runs, training and internals."""
