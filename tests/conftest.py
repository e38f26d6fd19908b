"""Pins numerics for the test run: 8 simulated CPU devices (set before JAX starts), float32 unless a test
enters ``jax.enable_x64(True)`` itself."""

import jax

jax.config.update("jax_num_cpu_devices", 8)

DEVICES = 8
