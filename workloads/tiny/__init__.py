"""Tiny DDPM on scikit-learn digits: model, training, sampling, quality measure."""
