# One policy per name this host serves HTTPS for (mta-sts.DOMAIN), named by it: lab-mta-sts picks
# it by the request's Host header. The MX hosts are the inbound MXs the lab DNS names after the
# cut-over, one mx line each (a fault case removes one). CRLF line ends, as RFC 8461 3.2 writes them.
mkdir -p /etc/mta-sts
{%- for name in https_names %}
printf '%s\r\n' 'version: STSv1' 'mode: enforce'{% for other, h in hosts.items() if 'inbound' in h.roles %} 'mx: {{ h.fqdn }}'{% endfor %} 'max_age: 86400' > /etc/mta-sts/{{ name }}.txt
{%- endfor %}
# lab-mta-sts runs as nobody: it reads the key through nogroup.
chgrp nogroup /etc/ssl/lab/https.key
chmod 0640 /etc/ssl/lab/https.key
lab-service enable lab-mta-sts
