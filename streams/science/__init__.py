"""Pure domain science for noise and air (no Kafka, no I/O): see DESIGN.md section 5."""
