"""Small helpers every room may use and that use no other room: argument checks
(`arguments`), the name registry (`registry`), atomic file writes (`io_utils`) and the
`tf.distribute` strategies (`distribute`)."""
