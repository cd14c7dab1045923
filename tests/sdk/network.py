"""openstacksdk (Debian's python3-openstacksdk) against Gureum's networking API.

Reads the cloud from OS_CLIENT_CONFIG_FILE (cloud "gureum"), makes a network, a subnet,
a port, a security group with a rule, pages through ports, tags and filters, then
cleans up; prints one JSON line of what it saw and exits non-zero on any error.
"""
import json

import openstack

conn = openstack.connect(cloud="gureum")
seen = {}
net = conn.network.create_network(name="sdk-net")
subnet = conn.network.create_subnet(
    name="sdk-subnet", network_id=net.id, ip_version=4, cidr="10.70.0.0/24",
    allocation_pools=[{"start": "10.70.0.10", "end": "10.70.0.20"}], dns_nameservers=["10.70.0.1"], is_dhcp_enabled=False,
)
seen["subnet_pools"] = subnet.allocation_pools
seen["network_subnets"] = conn.network.get_network(net.id).subnet_ids == [subnet.id]
ports = [conn.network.create_port(network_id=net.id, name="sdk-port-%d" % i) for i in range(5)]
seen["port_ips"] = [p.fixed_ips[0]["ip_address"] for p in ports]
# Paging: the SDK follows the ports_links next links.
seen["paged"] = sorted(p.name for p in conn.network.ports(network_id=net.id, limit=2))
sg = conn.network.create_security_group(name="sdk-sg", description="made by openstacksdk")
rule = conn.network.create_security_group_rule(
    security_group_id=sg.id, direction="ingress", protocol="tcp", port_range_min=80, port_range_max=80, remote_ip_prefix="0.0.0.0/0",
)
seen["rule"] = [rule.protocol, rule.port_range_min, rule.port_range_max]
port = conn.network.update_port(ports[0], security_group_ids=[sg.id], name="web")
seen["port_groups"] = port.security_group_ids == [sg.id]
conn.network.set_tags(net, ["sdk", "blue"])
seen["tagged"] = [n.name for n in conn.network.networks(tags="sdk")]
seen["found"] = conn.network.find_network("sdk-net").id == net.id
seen["missing"] = conn.network.find_network("no-such-net") is None
try:
    conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.70.0.128/25")
    seen["overlap"] = "accepted"
except openstack.exceptions.BadRequestException as e:
    seen["overlap"] = e.status_code
seen["quota_networks"] = conn.network.get_quota(conn.current_project_id).networks
seen["extensions"] = all(conn.network.find_extension(a) is not None for a in ["provider", "security-group", "quotas"])

for p in ports:
    conn.network.delete_port(p)
conn.network.delete_security_group(sg)
conn.network.delete_subnet(subnet)
conn.network.delete_network(net)
seen["cleaned"] = conn.network.find_network("sdk-net") is None
print(json.dumps(seen))
