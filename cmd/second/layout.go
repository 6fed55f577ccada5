package main

import "github.com/second-inc/second-release/internal/home"

// layout is the home --home, $SECOND_HOME or ~/.second names.
func (g *globals) layout() (home.Layout, error) {
	root, err := home.Resolve(g.home)
	if err != nil {
		return home.Layout{}, err
	}
	return home.Layout{Root: root}, nil
}
