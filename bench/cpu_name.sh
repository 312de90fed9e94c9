# bench/cpu_name.sh — sourced by bench/paired.sh and bench/rules.sh: cpu_name prints
# "MODEL NAME (family F, model M)" of this machine's first CPU, for a table's header.
cpu_name() {
    model=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
    fam=$(grep -m1 "cpu family" /proc/cpuinfo | cut -d: -f2 | tr -d ' ')
    mod=$(grep -m1 "^model[[:space:]]*:" /proc/cpuinfo | cut -d: -f2 | tr -d ' ')
    echo "$model (family $fam, model $mod)"
}
