module github.com/pixelstream/pixelstream/test

go 1.26.8
