module example.com/staticpack/go-3-nocgo-cgoresolver

go 1.19
