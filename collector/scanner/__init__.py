"""Network discovery of an agency's zones (nmap through python-nmap).

:mod:`collector.scanner.discovery` sweeps declared CIDRs (ping sweep, then a
top-ports scan of the live hosts only), stores the result and matches live
addresses to enrolled agents: a live host without an agent is unmanaged
equipment whose anti-virus and patch state nobody knows.
"""
