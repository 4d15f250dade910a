"""Pure domain code of churnwatch: no Faust, no Kafka, no I/O."""
