"""Layer 4: layers to a compiled Keras model, backbones, sparse text training."""
