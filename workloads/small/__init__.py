"""The bundled small DDPM: a 32×32 RGB U-Net trained on natural-image crops from installed packages."""
