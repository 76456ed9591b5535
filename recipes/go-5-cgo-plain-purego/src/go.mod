module example.com/staticpack/go-5-cgo-plain-purego

go 1.19
