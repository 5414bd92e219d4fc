"""itp's trainer: SFT, LoRA, QLoRA and DPO for the Llama family in plain PyTorch (see ../README.md)."""
