module example.com/staticpack/go-6-nocgo-purego

go 1.19
