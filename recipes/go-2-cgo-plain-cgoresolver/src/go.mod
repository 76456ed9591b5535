module example.com/staticpack/go-2-cgo-plain-cgoresolver

go 1.19
