# The bastion runs nothing but sshd (base role).
true
