"""Layer 2: TensorFlow set-up, --device and tf.distribute strategies."""
