# The configuration as built is the applied one; lab-apply acts on changes from here on.
lab-apply --init
