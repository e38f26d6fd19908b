"""Entry-point device configuration (JAX reads the flags only when it starts: here only their values are checked)."""

from sim.core import runtime


def test_cpu_devices_one_per_core_unless_the_user_set_flags(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    flags = runtime.configure_cpu_devices(3).split()
    assert "--xla_force_host_platform_device_count=3" in flags
    assert "--xla_cpu_enable_concurrency_optimized_scheduler=false" in flags
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
    assert runtime.configure_cpu_devices() is None
    assert runtime.os.environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=1"
