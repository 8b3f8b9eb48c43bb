package main

import (
	"fmt"
	_ "github.com/stash-backup/stash/internal/repository"
)

func main() { fmt.Println("hi") }
