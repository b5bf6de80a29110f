"""Running things: `services` (redis-server, Open vSwitch, ryu-manager, each by PID file), `network` (a topology on
real OVS under Mininet, iperf by PID, clean teardown) and `controller_feed` (what an emulated network tells the
controller through Redis). Above the components: it starts them, they never import it."""
