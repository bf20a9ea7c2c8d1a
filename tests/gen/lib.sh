# Shared by the fixture generators and the demo: a throwaway CA made with real openssl.
# Source it, then: ca_init DIR "CN" ; leaf NAME "CN" START END (dates as YYYYMMDDHHMMSSZ).

ca_init() {
    ca_dir=$1
    mkdir -p "$ca_dir/new"
    : >"$ca_dir/index.txt"
    echo 1000 >"$ca_dir/serial"
    cat >"$ca_dir/ca.cnf" <<CNF
[ ca ]
default_ca = test
[ test ]
dir = $ca_dir
database = \$dir/index.txt
new_certs_dir = \$dir/new
serial = \$dir/serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[ anything ]
commonName = supplied
organizationName = optional
countryName = optional
[ leaf ]
basicConstraints = CA:false
keyUsage = digitalSignature
CNF
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$ca_dir/ca.key" -out "$ca_dir/ca.pem" \
        -days 7300 -subj "/C=JP/O=Test NACCS/CN=$2" 2>/dev/null
}

# leaf NAME CN START END: NAME.pem and NAME.key in the current directory, signed by the CA.
leaf() {
    openssl req -new -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" \
        -subj "/C=JP/O=Example Trading/CN=$2" 2>/dev/null
    openssl ca -batch -config "$ca_dir/ca.cnf" -cert "$ca_dir/ca.pem" -keyfile "$ca_dir/ca.key" \
        -extensions leaf -startdate "$3" -enddate "$4" -in "$1.csr" -out "$1.pem" -notext \
        2>/dev/null
    rm -f "$1.csr"
}

# fp FILE: the SHA-256 fingerprint of a PEM certificate, lowercase hex without colons.
fp() {
    openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f
}
