"""DNS records of a site and their publication (RFC 2136 + TSIG), plan apart from apply."""
