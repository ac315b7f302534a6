"""On-chip plasticity: LoRA adapters on analog tiles updated by local learning rules
while the chip ages (docs/plasticity.md)."""
