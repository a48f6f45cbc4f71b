"""Hardware models: components, memory models, designs and replay."""
